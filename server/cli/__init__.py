"""The command line: `content-api <command>`."""
