"""The `loan-engine` command line."""
