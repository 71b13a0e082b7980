// Package containertest holds no code: its Ginkgo suite runs Gatehouse's container images
// (ci/images) through testcontainers-go against a real Docker daemon and shows what the protocol
// promises when containers fail:
//
//   - the reference broker image killed with SIGKILL and started again keeps persistent
//     sessions, their subscriptions and queued QoS 1 messages when its data directory is on a
//     volume, and loses them without one;
//   - a paused broker: clients time out on their keepalive, and after the broker resumes it
//     publishes their wills and they come back with their sessions;
//   - a simulated device in its own container cut from the network it shares with the broker:
//     the broker publishes its will after 1.5 × its keepalive, and it comes back when the network
//     does; the same check against a broker with the no-will fault mode sees no will;
//   - `gatehouse conform` against the images gives the same verdict for every statement as
//     against the same brokers outside containers (the reference broker in process, Debian's
//     mosquitto as a process, and both with a fault mode on);
//   - the command lines of the CI templates in ci/github and ci/gitlab run as written.
//
// Every image is built by the suite itself when missing or out of date, through the same code
// as `make images`.
package containertest
