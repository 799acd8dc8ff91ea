"""One run, end to end: provision, start, workload under faults, heal, check, tear down."""
