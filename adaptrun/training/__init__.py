"""The loop, its steps, optimizers, MOLF, stacked runs; imports records and below."""
