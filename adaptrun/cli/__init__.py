"""Entry points: the adaptrun command and its Hydra callbacks; imports report and below."""
