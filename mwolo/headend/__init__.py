"""The head-end: the platform's side of meter protocol v1 over MQTT.

``protocol`` parses what meters send and builds what they receive; ``transport`` is the
MQTT session that batches meter messages for the platform and acknowledges them only once
stored. Neither touches the database: the metering services do, through the handler.
"""
