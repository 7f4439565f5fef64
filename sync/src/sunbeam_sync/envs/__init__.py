"""Environments: built, recorded, indexed, verified on every use, healed, diffed, compiled."""
