"""Bulk jobs: many orders bound to one owner in the background, with leases and resume."""
