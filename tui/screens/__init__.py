"""The cockpit's screens: the main pane grid, drill-down details, help and runbooks."""
