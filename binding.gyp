{
  # Built by node-gyp at `npm install`/`npm ci` (npm runs `node-gyp rebuild`
  # by itself when a root binding.gyp exists and package.json has no install
  # script). Against the installed headers only: nodedir=/usr (Debian's
  # libnode-dev, libuv1-dev); never downloads headers.
  "targets": [
    {
      "target_name": "activation",
      "sources": ["native/activation.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
