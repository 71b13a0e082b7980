// Package interop holds the interoperability suite of the reference broker: independent MQTT
// client stacks — eclipse/paho.mqtt.golang (3.1.1), eclipse/paho.golang (5.0) and Debian's
// mosquitto_pub and mosquitto_sub processes (3.1.1 and 5.0) — exchange messages through the broker
// over TCP, TLS and WebSocket, and each must see what the specification promises: QoS 0/1/2 in
// every direction, retained messages, wills, keepalive, resumed sessions, refused passwords and
// ACL denials. The suite is in the package's tests; run it with `go test ./broker/interop/`.
package interop
