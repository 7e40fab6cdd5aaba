"""The relay: every stored event, in position order, onto a Redis stream."""
