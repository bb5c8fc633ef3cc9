// POSIX ACLs in execve()'s permission checks: the model against the real
// execve() as nobody (uid 65534, groups 65534 and 4242). Each case gives a
// program (a copy of probe_args), or the directory holding it, an access ACL
// written with setxattr("system.posix_acl_access") (the kernel then sets the
// group class bits of the mode from its mask), and the kernel decides:
// ACL_USER and ACL_GROUP entries, limited by ACL_MASK; a matching group entry
// that does not grant shuts out ACL_OTHER; an ACL whose mask is empty is not
// consulted at all. Needs root (to make the files and become nobody) and a
// /tmp with ACLs.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "procforge/exec.hpp"
#include "support/ldso_fixtures.hpp"
#include "support/oracle.hpp"

namespace procforge::testsupport {
namespace {

constexpr std::uint16_t kUserObj = 0x01, kUser = 0x02, kGroupObj = 0x04, kGroup = 0x08, kMask = 0x10, kOther = 0x20;
constexpr std::uint32_t kNobody = 65534, kExtraGroup = 4242;

struct Entry {
  std::uint16_t tag, perm;
  std::uint32_t id = 0xffffffffu;
};

struct AclCase {
  std::string name;
  std::vector<Entry> acl;  // sorted by tag, then id, as the kernel requires
  bool on_directory = false;
  gid_t file_gid = 0;
};

// include/uapi/linux/posix_acl_xattr.h: version 2, then the entries.
std::string xattr_value(const std::vector<Entry>& acl) {
  std::string v;
  auto put = [&](std::uint32_t x, int n) {
    for (int i = 0; i < n; ++i) v += static_cast<char>((x >> (8 * i)) & 0xff);
  };
  put(2, 4);
  for (const auto& e : acl) {
    put(e.tag, 2);
    put(e.perm, 2);
    put(e.id, 4);
  }
  return v;
}

std::vector<AclCase> cases() {
  return {
      {"user_entry_grants", {{kUserObj, 7}, {kUser, 5, kNobody}, {kGroupObj, 0}, {kMask, 5}, {kOther, 0}}},
      {"user_entry_masked", {{kUserObj, 7}, {kUser, 5, kNobody}, {kGroupObj, 0}, {kMask, 4}, {kOther, 0}}},
      {"user_entry_refuses_over_other", {{kUserObj, 7}, {kUser, 4, kNobody}, {kGroupObj, 5}, {kMask, 5}, {kOther, 5}}},
      {"group_entry_grants", {{kUserObj, 7}, {kGroupObj, 0}, {kGroup, 5, kNobody}, {kMask, 5}, {kOther, 0}}},
      {"supplementary_group_entry", {{kUserObj, 7}, {kGroupObj, 0}, {kGroup, 1, kExtraGroup}, {kMask, 7}, {kOther, 0}}},
      {"group_matched_shuts_out_other", {{kUserObj, 7}, {kGroupObj, 0}, {kGroup, 4, kNobody}, {kMask, 7}, {kOther, 5}}},
      {"one_of_two_groups_grants",
       {{kUserObj, 7}, {kGroupObj, 0}, {kGroup, 4, kNobody}, {kGroup, 1, kExtraGroup}, {kMask, 7}, {kOther, 0}}},
      {"owning_group_entry", {{kUserObj, 7}, {kUser, 0, 1}, {kGroupObj, 5}, {kMask, 1}, {kOther, 0}}, false, kNobody},
      {"group_masked", {{kUserObj, 7}, {kGroupObj, 0}, {kGroup, 5, kNobody}, {kMask, 4}, {kOther, 5}}},
      {"empty_mask_acl_ignored", {{kUserObj, 7}, {kUser, 0, kNobody}, {kGroupObj, 0}, {kMask, 0}, {kOther, 5}}},
      {"other_only", {{kUserObj, 7}, {kGroupObj, 0}, {kOther, 1}}},
      {"directory_user_search", {{kUserObj, 7}, {kUser, 1, kNobody}, {kGroupObj, 0}, {kMask, 7}, {kOther, 0}}, true},
      {"directory_user_no_search", {{kUserObj, 7}, {kUser, 6, kNobody}, {kGroupObj, 0}, {kMask, 7}, {kOther, 5}}, true},
      {"directory_group_masked", {{kUserObj, 7}, {kGroupObj, 0}, {kGroup, 1, kNobody}, {kMask, 6}, {kOther, 1}}, true},
  };
}

TEST(AclExecDiff, kernel_and_model_agree_as_nobody) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: makes files owned by root and runs execve() as nobody";
  const std::string probe = PROCFORGE_PROBE_DIR "/probe_args";
  ASSERT_EQ(::access(probe.c_str(), X_OK), 0) << probe;
  std::size_t same = 0;
  const auto all = cases();
  for (const auto& c : all) {
    SCOPED_TRACE("case " + c.name);
    FixtureDir d;
    const std::string dir = d.mkdirs("sub");
    const std::string prog = dir + "/prog";
    const CommandResult cp = run_command({"/bin/cp", probe, prog});
    ASSERT_EQ(cp.exit_code, 0) << cp.err;
    ASSERT_EQ(::chmod(prog.c_str(), 0755), 0);
    ASSERT_EQ(::chown(c.on_directory ? dir.c_str() : prog.c_str(), 0, c.file_gid), 0);
    const std::string target = c.on_directory ? dir : prog;
    const std::string value = xattr_value(c.acl);
    if (::setxattr(target.c_str(), "system.posix_acl_access", value.data(), value.size(), 0) != 0) {
      ASSERT_EQ(errno, EOPNOTSUPP) << std::strerror(errno);
      GTEST_SKIP() << "the filesystem of " << d.path() << " has no POSIX ACLs";
    }
    OracleRequest oreq;
    oreq.path = prog;
    oreq.argv = {prog};
    oreq.envp = {"PATH=/usr/bin:/bin"};
    oreq.uid = kNobody;
    oreq.gid = kNobody;
    oreq.groups = {kNobody, kExtraGroup};
    const OracleResult k = run_exec(oreq);
    ASSERT_TRUE(k.setup_error.empty()) << k.setup_error;

    exec::Request req;
    req.path = prog;
    req.argv = oreq.argv;
    req.envp = oreq.envp;
    req.creds = exec::Credentials::unprivileged(kNobody, kNobody);
    req.creds.groups = oreq.groups;
    req.explain = false;
    const auto p = exec::predict(req, exec::SystemFacts::probe());
    ASSERT_TRUE(p.ok()) << p.error().message;
    const bool kernel_ok = k.outcome == OracleOutcome::ok;
    const bool model_ok = p->outcome == exec::Outcome::ok;
    const int before = ::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count();
    EXPECT_EQ(kernel_ok, model_ok) << "kernel: " << describe(k) << "; model: errno " << p->err << " at "
                                   << p->failed_step;
    if (!kernel_ok && !model_ok) {
      EXPECT_EQ(k.err, p->err) << "kernel: " << describe(k);
    }
    same += ::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count() == before;
  }
  std::printf("ACL cases: %zu compared, %zu identical\n", all.size(), same);
}

}  // namespace
}  // namespace procforge::testsupport
