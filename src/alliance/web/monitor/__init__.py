"""Dashboards and alerts while treatment runs."""
