"""The demo territory (``guichet demo``, ``guichet serve --demo``): its partners and
conventions (``territory``), loaded through the public API (``loader``), sample case files
(``files``), a year of activity for the steering statistics (``activity``), aides facultatives
(``aids``), and the banner printed when the demo serves (``welcome``)."""
