"""The notifier: chosen events, signed, to the webhooks of the agents they concern."""
