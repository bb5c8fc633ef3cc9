// The caller's identity as the kernel's permission checks see it: fsuid/fsgid,
// supplementary groups and the effective capabilities that override DAC.
#include <grp.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "procforge/exec.hpp"

namespace procforge::exec {

namespace {

std::uint64_t effective_caps() {
  FILE* f = fopen("/proc/self/status", "re");
  if (!f) return 0;
  char line[256];
  unsigned long long caps = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "CapEff: %llx", &caps) == 1) break;
  fclose(f);
  return caps;
}

}  // namespace

Credentials Credentials::current() {
  Credentials c;
  getresuid(&c.uid, &c.euid, &c.suid);
  getresgid(&c.gid, &c.egid, &c.sgid);
  // setfsuid() with an invalid id changes nothing and returns the current one.
  c.fsuid = static_cast<uid_t>(setfsuid(static_cast<uid_t>(-1)));
  c.fsgid = static_cast<gid_t>(setfsgid(static_cast<gid_t>(-1)));
  int n = getgroups(0, nullptr);
  if (n > 0) {
    c.groups.resize(static_cast<std::size_t>(n));
    n = getgroups(n, c.groups.data());
    c.groups.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  }
  const std::uint64_t caps = effective_caps();
  c.cap_dac_override = caps & (1ull << 1);         // CAP_DAC_OVERRIDE
  c.cap_dac_read_search = caps & (1ull << 2);      // CAP_DAC_READ_SEARCH
  c.cap_sys_rawio = caps & (1ull << 17);           // CAP_SYS_RAWIO
  c.cap_sys_admin = caps & (1ull << 21);           // CAP_SYS_ADMIN
  c.cap_checkpoint_restore = caps & (1ull << 40);  // CAP_CHECKPOINT_RESTORE
  c.no_new_privs = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
  return c;
}

Credentials Credentials::unprivileged(uid_t uid, gid_t gid) {
  Credentials c;
  c.uid = c.euid = c.suid = c.fsuid = uid;
  c.gid = c.egid = c.sgid = c.fsgid = gid;
  c.groups = {gid};
  return c;
}

}  // namespace procforge::exec
