"""Local web pages (served on 127.0.0.1 by default): the micro-annotation page."""
