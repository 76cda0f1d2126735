"""What the tests and the benchmarks share: a server process, a lean Yjs client, the traces,
the crash loop. Neither tests/ nor bench/ is imported from here."""
