"""Metadata: peewee models and database setup."""
