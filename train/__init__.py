"""Training: dataset adapters, feature cache, splits, fitting, reports and the Hub push."""
