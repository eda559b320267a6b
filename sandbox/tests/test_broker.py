"""The brokers the tests and `make run` use carry QoS 1 and retained messages."""

import threading
import uuid

import paho.mqtt.client as mqtt

from mwolo.core.testing.mqtt import MqttBroker


def _client(broker: MqttBroker, name: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{broker.prefix}-{name}")
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def test_qos1_messages_and_retained_status_go_through(mqtt_broker: MqttBroker):
    # A meter of this test's own: other tests leave retained statuses under the prefix.
    topic = f"{mqtt_broker.prefix}/meters/BROKER-{uuid.uuid4().hex[:8]}/status"
    publisher = _client(mqtt_broker, "pub")
    publisher.publish(
        topic, b'{"online": true, "relay": "on"}', qos=1, retain=True
    ).wait_for_publish(5)

    received = threading.Event()
    payloads: list[bytes] = []

    def on_message(client, userdata, message):
        payloads.append(message.payload)
        received.set()

    subscriber = _client(mqtt_broker, "sub")
    subscriber.on_message = on_message
    subscriber.subscribe(topic, qos=1)

    assert received.wait(5), "the retained status never arrived"
    assert payloads == [b'{"online": true, "relay": "on"}']
    publisher.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)  # clear it
    for client in (publisher, subscriber):
        client.loop_stop()
        client.disconnect()


def test_a_private_broker_comes_back_after_a_restart(restartable_mqtt_broker: MqttBroker):
    restartable_mqtt_broker.restart()
    client = _client(restartable_mqtt_broker, "after-restart")
    info = client.publish(f"{restartable_mqtt_broker.prefix}/ping", b"1", qos=1)
    info.wait_for_publish(5)
    assert info.is_published()
    client.loop_stop()
    client.disconnect()
