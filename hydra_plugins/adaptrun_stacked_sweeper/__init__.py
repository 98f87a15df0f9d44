"""adaptrun's stacking sweeper (``hydra/sweeper=stacked``); Hydra finds plugins here."""
