// Preloaded (NODE_OPTIONS=--require) into every Node that scripts/arm64.sh
// runs under qemu-user. qemu-user does not follow execve into another
// foreign binary, and this machine has no binfmt_misc handler for aarch64
// (registering one would change the whole host), so a child started with
// process.execPath (the arm64 node) would fail to exec. This points
// process.execPath at a shell wrapper that runs the same arm64 node under
// qemu; children inherit NODE_OPTIONS and so get the same treatment.
'use strict'
if (process.env.POSIX_SHM_ARM64_NODE) process.execPath = process.env.POSIX_SHM_ARM64_NODE
