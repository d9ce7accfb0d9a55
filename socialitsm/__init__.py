"""SocialITSM: social posts become incidents a service desk can work."""

# The one place the version is written: pyproject.toml reads it, CHANGELOG.md names it.
__version__ = "0.9.0"
