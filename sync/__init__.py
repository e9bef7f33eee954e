"""Sync workers: fetch pages from Zenefits and Classroom, load them raw, call the SQL merge."""
