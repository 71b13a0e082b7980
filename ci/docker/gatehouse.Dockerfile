# gatehouse:dev — the gatehouse binary alone, FROM scratch. Nothing is pulled: `make images`
# (ci/images) compiles gatehouse statically (CGO_ENABLED=0) into the build context, then runs
# `docker build --pull=false` on it.
#
# The default command is the reference broker on 0.0.0.0:1883, anonymous clients allowed,
# sessions, queued QoS 1/2 messages and retained messages kept in /data (a volume), so that the
# broker survives `docker kill` the way a deployed broker survives a power cut. The same image runs
# a simulated fleet: docker run gatehouse:dev sim --fleet /fleet.yaml --broker tcp://broker:1883
FROM scratch
COPY gatehouse /gatehouse
# An empty directory owned by the non-root user: a volume created from it inherits the owner.
COPY --chown=65532:65532 data /data
USER 65532:65532
EXPOSE 1883
VOLUME ["/data"]
ENTRYPOINT ["/gatehouse"]
CMD ["broker", "--listen", "0.0.0.0:1883", "--allow-anonymous", "--data-dir", "/data"]
