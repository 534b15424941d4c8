"""stratlab: an autonomous research lab for trading strategies."""
