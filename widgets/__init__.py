"""Reusable cockpit panes and controls; they render results they are given and open no connections."""
