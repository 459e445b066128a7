"""The JSON lines of benchmarks/image/*.py ($OUT/<bench>.jsonl) as the markdown tables of
benchmarks/image/README.md.   /usr/bin/python3 benchmarks/image/table.py"""
import json
import os

OUT = os.environ.get("OUT", os.path.join(os.path.dirname(__file__), "..", "out", "image"))


def lines(name):
    path = os.path.join(OUT, name + ".jsonl")
    return [json.loads(l) for l in open(path)] if os.path.exists(path) else []


def f(x, fmt="%.3g"):
    return "-" if x is None else (fmt % x if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x))


d = lines("denoise")
tv = next((x for x in d if x["stage"] == "test" and x["method"] == "tv_chambolle"), None)
if tv:
    print("Denoising, camera 512x512, sigma 0.1, test seed (TV: weight %g, PSNR %.2f dB, SSIM %.3f, %.2f s; noisy input %.2f dB)\n"
          % (tv["weight"], tv["psnr"], tv["ssim"], tv["seconds"], tv["psnr_observed"]))
    print("| potential | lambda | delta | inner | PSNR dB | - TV dB | within 0.3 dB | SSIM | outer its | compute s | s/outer | time / TV |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for x in d:
        if x["stage"] == "test" and x["method"] == "boundopt" and "error" not in x:
            print("| %s | %g | %g | %s | %.2f | %+.2f | %s | %.3f | %d | %s | %s | %s |" % (
                x["potential"], x["lambda"], x["delta"], x["inner"], x["psnr"], x["psnr_minus_tv"], "yes" if x["within_0.3dB_of_tv"] else "no",
                x["ssim"], x["outer_iterations"], f(x["compute_seconds"]), f(x["seconds_per_outer"]), f(x["time_ratio_vs_tv"])))
        elif "error" in x:
            print("| %s | | | %s | error: %s |" % (x.get("potential"), x["inner"], x["error"][:80]))
    print()
e = lines("energy")
if e:
    lim = e[0]
    print("Energy gap to the exact-AM limit (gm, lambda %g, delta %g; E* = %.10g after %d exact outer iterations)\n" % (lim["lambda"], lim["delta"], lim["energy"], lim["outer_iterations"]))
    print("| inner | s to 1e-4 | s to 1e-5 | s to 1e-6 | outer its run | final gap | s/outer | PSNR dB |")
    print("|---|---|---|---|---|---|---|---|")
    for x in e[1:]:
        s = x["seconds_to"]
        print("| %s | %s | %s | %s | %d | %.2e | %s | %.3f |" % (x["inner"], f(s["0.0001"]), f(s["1e-05"]), f(s["1e-06"]), x["outer_iterations_run"], x["final_gap"], f(x["seconds_per_outer"]), x["psnr"]))
    print()
b = lines("deblur")
if b:
    print("Deblurring, camera, blur sigma 2 + noise 0.01, test seed\n")
    print("| method | inner / param | PSNR dB | SSIM | gain dB | - best peer dB | outer its | seconds | s/outer | time / Wiener |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    obs = next((x["psnr_observed"] for x in b if x.get("method") == "unsupervised_wiener"), None)
    for x in b:
        if x["stage"] != "test" or "error" in x:
            continue
        if x["method"] == "boundopt":
            print("| boundopt gm (%g, %g) | %s | %.2f | %.3f | %+.2f | %+.2f | %d | %s | %s | %s |" % (x["lambda"], x["delta"], x["inner"], x["psnr"], x["ssim"], x["psnr_gain"],
                  x["psnr_minus_best_peer"], x["outer_iterations"], f(x["compute_seconds"]), f(x["seconds_per_outer"]), f(x["time_ratio_vs_wiener"])))
        else:
            print("| %s | %s | %.2f | %.3f | %+.2f | | | %s | | |" % (x["method"], x.get("num_iter", ""), x["psnr"], x["ssim"], x["psnr"] - obs, f(x["seconds"])))
    print()
a = lines("at")
if a:
    print("Ambrosio-Tortorelli (jobs' parameters) and chan_vese\n")
    print("| image | method | outer its | eps stages | compute s | s/outer | v < 0.5 | time / chan_vese |")
    print("|---|---|---|---|---|---|---|---|")
    cv = {}
    for x in a:
        if x["method"] == "chan_vese":
            cv[x["image"]] = x["seconds"]
            print("| %s | chan_vese (500 its max) | | | %s | | | 1 |" % (x["image"], f(x["seconds"])))
        else:
            print("| %s | boundopt %s | %d | %d | %s | %s | %.3f | %s |" % (x["image"], x["inner"], x["outer_iterations"], x["eps_stages"], f(x["compute_seconds"]),
                  f(x["seconds_per_outer"]), x["edge_fraction_v_below_0.5"], f(x["time_ratio_vs_chan_vese"])))
    print()
s = lines("scale")
if s:
    print("Scale: gm denoising of 4096 x 4096\n")
    print("| method | ranks | outer its | compute s | compute s, 1 outer | setup s | s/outer (marginal) | speedup | max RSS/rank GiB | s/outer / TV s/it |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for x in s:
        if x["method"] == "tv_chambolle":
            print("| tv_chambolle (1 thread) | 1 | %d | | | | %s | | | 1 |" % (x["iterations"], f(x["seconds_per_iteration"])))
        else:
            print("| boundopt %s | %d | %d | %s | %s | %s | %s | %s | %s | %s |" % (x["inner"], x["ranks"], x["outer_iterations"], f(x["compute_seconds"]),
                  f(x.get("compute_seconds_1_outer")), f(x.get("setup_seconds")), f(x.get("seconds_per_outer_marginal") or x["seconds_per_outer"]),
                  f(x["speedup_vs_first_ranks"]), f(x["max_rss_bytes_per_rank"] / 2 ** 30, "%.2f") if x["max_rss_bytes_per_rank"] else "-", f(x.get("ratio_per_iteration_vs_tv"))))
