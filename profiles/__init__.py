"""Bundled profiles (TOML), shipped as package data."""
