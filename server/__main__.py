from .cli import main

# Guarded: worker processes started with "spawn" import this module under another name.
if __name__ == "__main__":
    main(prog_name="python -m server")
