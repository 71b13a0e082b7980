// Package device is Gatehouse's device certification: it plays the broker for one device — a
// gate, turnstile or camera controller, or any MQTT client — and checks what the device's
// firmware does on the wire, requirement by requirement, each traced to the normative statements
// of MQTT 3.1.1 or 5.0 it checks, and, under the gate, turnstile and camera profiles, to the
// device contract of DESIGN.md.
//
// The server side is a stage (conformance/device/stage): a one-device MQTT server on the packet
// codec that behaves like a broker until a check makes it misbehave on purpose — hold back a
// PUBACK, PUBREC or PUBCOMP, drop the connection mid-flow, answer a reconnection with Session
// Present 0, refuse a CONNECT, send a 5.0 DISCONNECT, announce tight CONNACK limits. The run
// goes through phases (commands, keepalive, a silent server, QoS 1 resend, physical events and
// QoS 2, power loss, 5.0 limits, lost session, server DISCONNECT, refusal); each phase records
// findings, and judgements over the whole trace follow (packet identifiers, acknowledgements,
// will, status, message QoS, events). A requirement's verdict is the worst of its findings; a
// SHOULD requirement that does not hold is a warning; one that nothing exercised is reported so,
// with the reason.
//
//	res, err := device.Certify(ctx, device.Config{Profile: "gate", ClientID: "gate-01", Listen: "0.0.0.0:1883"})
//	fmt.Println(res.Summary())
//	paths, err := res.WriteReport("report")   // report.html, junit.xml, the JSON record, trace.txt
//
// The certifier needs the device to reconnect by itself after every connection it drops. With a
// Physical (a hardware-in-the-loop bench's relays, or a simulated device in process) it also cuts
// the device's power and plays physical events (a vehicle on the loop). README.md beside this
// file lists the requirements and how each is exercised.
package device
