// The parent's side of a new user namespace: its id maps.
//
// The child is created with CLONE_NEWUSER (fork strategy) and waits on the
// sync pipe; meanwhile the parent, which holds the capabilities in the outer
// namespace, writes /proc/PID/setgroups ("deny", unless supplementary groups
// were asked for: an unprivileged gid_map writer must deny setgroups first,
// kernel/user_namespace.c proc_setgroups_write() and new_idmap_permitted()),
// then uid_map and gid_map, each in a single write() as the kernel requires
// (map_write(): a second write gets EPERM). Then one byte on the sync pipe
// lets the child go on (clone.cpp).
#include <unistd.h>

#include "common/files.hpp"
#include "spawn/plan.hpp"

namespace procforge::spawn {

namespace {

std::string map_text(const std::vector<IdMap>& maps, std::uint32_t self) {
  std::string text;
  if (maps.empty()) return "0 " + std::to_string(self) + " 1\n";  // the caller becomes root inside
  for (const auto& m : maps)
    text += std::to_string(m.inside) + " " + std::to_string(m.outside) + " " + std::to_string(m.count) + "\n";
  return text;
}

Status write_proc(pid_t pid, const char* file, const std::string& text) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  if (int err = write_whole(path, text))
    return Error{ErrorStep::spawn_setup, err, std::move(path),
                 std::string("writing ") + file + " of pid " + std::to_string(pid) + ": " + errno_name(err)};
  return ok_status();
}

}  // namespace

Status write_id_maps(const Plan& plan, pid_t pid) {
  if (plan.deny_setgroups)
    if (auto st = write_proc(pid, "setgroups", "deny"); !st) return st;
  if (auto st = write_proc(pid, "uid_map", map_text(plan.opts.uid_map, geteuid())); !st) return st;
  return write_proc(pid, "gid_map", map_text(plan.opts.gid_map, getegid()));
}

}  // namespace procforge::spawn
