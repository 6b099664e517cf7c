"""The warroom cockpit: the Textual app, its screens, the CLI and the probe scheduler."""
