"""The engine server (Ray Serve): see launch.py and deployment.py. Needs the ``serve`` extra."""
