"""TV screens: pairing a TV by a short code (pairing.py), who may send a board or playlist to
a screen and manage it (rules.py), and their pages (/tv/, /screens/: views.py, forms.py)."""
