{
  "targets": [
    {
      "target_name": "glow_relay",
      "sources": ["native/relay.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"]
    }
  ]
}
