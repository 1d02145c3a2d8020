"""Stages and recipes: wire everything, own no math."""
