"""A run's records (tracker, history, board, checkpoints); imports core and the domain."""
