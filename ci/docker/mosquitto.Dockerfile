# gatehouse-mosquitto:dev — Debian's mosquitto as an independent peer broker, FROM scratch. Nothing
# is pulled: `make images` (ci/images) copies the installed /usr/sbin/mosquitto, every shared
# library `ldd` lists for it, the dynamic loader, and mosquitto.conf into rootfs/ of the build
# context, then runs `docker build --pull=false` on it.
FROM scratch
COPY rootfs/ /
# An empty directory owned by the non-root user: a volume created from it inherits the owner.
COPY --chown=65532:65532 data /mosquitto/data
USER 65532:65532
EXPOSE 1883
VOLUME ["/mosquitto/data"]
ENTRYPOINT ["/usr/sbin/mosquitto"]
CMD ["-c", "/mosquitto/config/mosquitto.conf"]
