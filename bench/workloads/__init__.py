"""The five workloads. Each ``run`` takes a started :class:`bench.servers.Server` and returns
the figures of one measurement as a flat dict (numbers, or None where not applicable)."""
