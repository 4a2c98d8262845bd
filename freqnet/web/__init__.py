"""The local web app (`freqnet serve`); needs the `web` extra (Flask, waitress)."""
