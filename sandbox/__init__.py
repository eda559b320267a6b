"""Stand-ins for the parties outside the platform, speaking their real protocols.

Started by ``make run`` and by the tests over real sockets: an MQTT broker (when no
Mosquitto is configured), the meter fleet, and the mobile-money operators (``operators``).
"""
