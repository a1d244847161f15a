"""The embedded LINE sandbox: a stand-in for LINE's APIs to rehearse campaigns on."""
