"""What the command-line jobs share: argument handling, exit codes, the cross-validation job."""
