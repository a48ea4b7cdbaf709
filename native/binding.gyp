{
  "targets": [
    {
      "target_name": "tcpip_native",
      "sources": [
        "src/addon.c",
        "src/util.c",
        "src/napi_class.c",
        "src/frame_device.c",
        "src/vnet.c",
        "src/unix_dgram.c"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "conditions": [
        ["OS=='linux'", {
          "sources": ["src/tap_linux.c", "src/ping_socket.c", "src/confine_linux.c", "src/udp_gso.c"]
        }],
        ["OS=='mac'", {
          "sources": ["src/vmnet_darwin.c"],
          "link_settings": {
            "libraries": ["-framework vmnet"]
          },
          "xcode_settings": {
            "GCC_C_LANGUAGE_STANDARD": "gnu11",
            "MACOSX_DEPLOYMENT_TARGET": "10.15",
            "OTHER_CFLAGS": ["-fblocks", "-Wall", "-Wextra", "-Wno-unused-parameter"]
          }
        }]
      ]
    }
  ]
}
