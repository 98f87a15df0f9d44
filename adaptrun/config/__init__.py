"""The whole config: its checks, options, resolvers, stacking plan; imports training and below."""
