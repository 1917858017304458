"""Execution: mappers over the pure per-clip unit of work (local processes, SLURM arrays),
the shard plan, and where a run stands (status)."""
