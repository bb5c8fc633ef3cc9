#include "exec/diagnosis.hpp"

#include <cerrno>

#include "exec/path_lookup.hpp"

namespace procforge::exec {

std::pair<std::string, std::string> diagnose_lookup(int err, const std::string& role, const std::string& name,
                                                    const LookupResult& lr) {
  const std::string who = "the " + role + " " + name;
  switch (err) {
    case ENOENT: {
      if (name.empty()) return {"execve was given an empty path", "pass the program's path"};
      std::string d = who + " does not exist";
      if (lr.resolved != name && !lr.resolved.empty()) d += " (looked for " + lr.resolved + ")";
      std::string fix = "check the path";
      if (role == "#! interpreter" && !name.empty() && name.back() == '\r') {
        d = who.substr(0, who.size() - 1) +
            "\\r does not exist: the script has Windows (CRLF) line ends, so the "
            "kernel reads the interpreter name with a trailing carriage return";
        fix = "convert the script to Unix line ends: sed -i 's/\\r$//' SCRIPT (or dos2unix SCRIPT)";
      } else if (role == "#! interpreter") {
        fix = "install the interpreter or correct the #! line (e.g. #!/usr/bin/env NAME)";
      } else if (role == "ELF interpreter") {
        d += "; this is the dynamic linker named in the program's PT_INTERP, so the shell says \"No such file "
             "or directory\" although the program itself exists";
        fix =
            "install the C library the program was built for (e.g. a 32-bit or musl loader), or rebuild it "
            "for this system";
      }
      return {d, fix};
    }
    case ENOTDIR: return {who + ": " + lr.detail, "remove the trailing '/' or fix the directory part of the path"};
    case ENAMETOOLONG: return {who + ": " + lr.detail, "shorten the path (use a relative path or a symlink)"};
    case ELOOP: return {who + ": " + lr.detail, "fix the symlink chain at " + lr.resolved};
    case EACCES:
      if (name.empty())
        return {"the " + role +
                    " name is empty (e.g. \"#!\" followed by nothing usable, or a NUL); the kernel "
                    "resolves an empty name to the working directory, which cannot be executed",
                "write the interpreter's path after #! (or in PT_INTERP)"};
      return {who + ": " + lr.detail,
              "grant search permission (chmod +x) on the directory, or run as a user who has it"};
    default: return {who + ": " + lr.detail, "check the path"};
  }
}

}  // namespace procforge::exec
