#!/usr/bin/env bash
# Bad input files that other scripts do not cover: a kNN graph file, a scenes file, an HDF5 image,
# a trained network and a checkpoint, each made valid first (by the task that writes it, or by
# h5py for the image) and then broken in one way with h5py.  Each gets one line "boundopt: <file>:
# <problem>; expected <what>", exit 1 on every rank, and no file left behind; the rank count varies
# (1, 2, 3) because several of these checks run per rank's slice and must still end on every rank.
source "$(dirname "$0")/../lib.sh"
D=$SCRATCH/in
O=$SCRATCH/out
mkdir -p "$D" "$O"
PY=/usr/bin/python3
FM=/usr/share/datasets/fashion-mnist
TEX=jobs/data/textures

# One way to break a file, used by every h5py snippet below (imported from $D).
cat >"$D/break_h5.py" <<'EOF'
"""broken(d, src, name, change): d/name.h5 is a copy of d/src.h5 with change(f) applied (r+).
replace(f, name, values, attrs=None): the dataset gets new values and keeps its attributes
(or gets attrs when given)."""
import h5py, shutil
def broken(d, src, name, change):
    shutil.copy(f"{d}/{src}.h5", f"{d}/{name}.h5")
    with h5py.File(f"{d}/{name}.h5", "r+") as f:
        change(f)
def replace(f, name, values, attrs=None):
    old = dict(f[name].attrs)
    del f[name]
    f[name] = values
    f[name].attrs.update(old if attrs is None else attrs)
EOF

# --- kNN graph files (read by task cluster with -cluster_graph)
"$TOOLS/mkfeatures" "$D/blobs.h5" -n 300 -d 6 -classes 3 -seed 5 -sep 8
run_np 2 -task knn -input "$D/blobs.h5" -output "$D/g.h5" -knn_k 5 || fail "knn graph for the bad-graph cases" "$(cat "$SCRATCH/err.txt")"
$PY - "$D" <<'EOF' || fail "make the broken graph files" "h5py failed"
import functools, numpy as np, sys
d = sys.argv[1]
sys.path.insert(0, d)
from break_h5 import broken, replace
broken = functools.partial(broken, d, "g")
def gtype(f):       replace(f, "/graph/data", f["/graph/data"][:].astype(np.int32))
def goffsets(f):    p = f["/graph/indptr"][:]; p[-1] += 1000; replace(f, "/graph/indptr", p)
def gdecrease(f):   p = f["/graph/indptr"][:]; p[150] = p[148]; replace(f, "/graph/indptr", p)
def gcolumn(f):     i = f["/graph/indices"][:]; p = f["/graph/indptr"][:]; i[p[250]] = 300; replace(f, "/graph/indices", i)
def gunsorted(f):   i = f["/graph/indices"][:]; p = f["/graph/indptr"][:]; a = p[10]; i[a], i[a + 1] = i[a + 1], i[a]; replace(f, "/graph/indices", i)
for name, change in (("gtype", gtype), ("goffsets", goffsets), ("gdecrease", gdecrease), ("gcolumn", gcolumn), ("gunsorted", gunsorted)):
    broken(name, change)
EOF
CL=(-task cluster -input "$D/blobs.h5" -output "$O/c.h5" -cluster_k 3 -cluster_method slk-ms)
expect_error "graph: a features file given as the graph" 1 'blobs\.h5: no /graph/indptr, /graph/indices and /graph/data; expected a graph file' "$O" 2 "${CL[@]}" -cluster_graph "$D/blobs.h5"
expect_error "graph: integer weights" 1 'gtype\.h5: /graph datasets of the wrong shape or type; expected 1-d integer indptr and indices and 1-d float data' "$O" 1 "${CL[@]}" -cluster_graph "$D/gtype.h5"
expect_error "graph: offsets past the nonzeros (last rank's slice, every rank ends)" 1 'goffsets\.h5: /graph/indptr offsets outside \[0, [0-9]+\] \(rank 2.s rows\)' "$O" 3 "${CL[@]}" -cluster_graph "$D/goffsets.h5"
expect_error "graph: decreasing offsets" 1 'gdecrease\.h5: /graph/indptr decreases at row 149; expected non-decreasing offsets' "$O" 2 "${CL[@]}" -cluster_graph "$D/gdecrease.h5"
expect_error "graph: a column beyond N" 1 'gcolumn\.h5: /graph/indices: column 300 in row 250; expected 0 <= column < n = 300' "$O" 3 "${CL[@]}" -cluster_graph "$D/gcolumn.h5"
expect_error "graph: unsorted columns in a row" 1 'gunsorted\.h5: /graph/indices: row 10 is not strictly ascending; expected sorted columns' "$O" 1 "${CL[@]}" -cluster_graph "$D/gunsorted.h5"

# --- scenes files (read by task train-seg)
run_np 2 -task import -output "$D/fm.h5" -import_images "$FM/t10k-images-idx3-ubyte.gz" -import_labels "$FM/t10k-labels-idx1-ubyte.gz" || fail "import the Fashion-MNIST test images" "$(cat "$SCRATCH/err.txt")"
run_np 2 -task scenes -input "$D/fm.h5" -seed 3 -scenes_textures "$TEX/brick.png" -scenes_count 4 -scenes_size 32 -scenes_scale 1 -scenes_min_objects 1 -scenes_max_objects 1 -scenes_features -scenes_feat_sigma 1 -output "$D/sc.h5" || fail "tiny scenes for the bad-scenes cases" "$(cat "$SCRATCH/err.txt")"
$PY - "$D" <<'EOF' || fail "make the broken scenes files" "h5py failed"
import functools, numpy as np, sys
d = sys.argv[1]
sys.path.insert(0, d)
from break_h5 import broken, replace
broken = functools.partial(broken, d, "sc")
def nomasks(f):   del f["/masks"]
def masks16(f):   replace(f, "/masks", f["/masks"][:].astype(np.uint16))
def masksflat(f): replace(f, "/masks", f["/masks"][:].reshape(4, -1)[:, :1000], attrs={})
def masks4(f):    replace(f, "/masks", f["/masks"][:].reshape(4, 32, 32, 1), attrs={})
def images3(f):   replace(f, "/images", f["/images"][:3])
def featnan(f):
    x = f["/features"][:]; x[2, 5] = np.nan; replace(f, "/features", x)
def names5(f):    replace(f, "/feature_names", f["/feature_names"][:5])
def noy(f):       n = f["/feature_names"][:]; n[list(n).index(b"y")] = b"z"; replace(f, "/feature_names", n)
def onlyxy(f):
    replace(f, "/features", f["/features"][..., 4:6], attrs={"channels": 2, "height": 32, "width": 32})
    replace(f, "/feature_names", np.array([b"x", b"y"], dtype="S18"))
for name, change in (("nomasks", nomasks), ("masks16", masks16), ("masksflat", masksflat), ("masks4", masks4), ("images3", images3), ("featnan", featnan),
                     ("names5", names5), ("noy", noy), ("onlyxy", onlyxy)):
    broken(name, change)
def labels(values):
    return lambda f: replace(f, "/objects/label", np.array(values, dtype=np.int32).reshape(f["/objects/label"].shape))
broken("oneclass", labels([3, 3, 3, 3]))
broken("twoclasses", labels([0, 1, 0, 1]))
broken("class7", labels([0, 1, 0, 7]))
EOF
TS=(-task train-seg -output "$O/s.h5" -seg_iterations 2)
expect_error "scenes: no /masks" 1 'nomasks\.h5: no /masks; expected a scenes file' "$O" 1 "${TS[@]}" -input "$D/nomasks.h5"
expect_error "scenes: 16-bit masks" 1 'masks16\.h5: /masks is not uint8; expected uint8 masks' "$O" 2 "${TS[@]}" -input "$D/masks16.h5"
expect_error "scenes: masks whose rows are not height x width" 1 'masksflat\.h5: /masks is S x 1000 without a matching height x width' "$O" 3 "${TS[@]}" -input "$D/masksflat.h5"
expect_error "scenes: masks of rank 4" 1 'masks4\.h5: /masks has rank 4; expected S x H x W masks' "$O" 1 "${TS[@]}" -input "$D/masks4.h5"
expect_error "scenes: fewer images than masks" 1 'images3\.h5: /images does not match /masks \(4 x 32 x 32\)' "$O" 2 "${TS[@]}" -input "$D/images3.h5"
expect_error "train-seg: five names for six channels" 1 'names5\.h5: 5 feature names for 6 channels; expected one name per channel' "$O" 2 "${TS[@]}" -input "$D/names5.h5"
expect_error "train-seg: a channel x without a channel y" 1 'noy\.h5: a feature channel named x without one named y; expected both or neither' "$O" 1 "${TS[@]}" -input "$D/noy.h5"
expect_error "train-seg: only the position channels, without coordinates" 1 'onlyxy\.h5: only the x, y feature channels; expected other channels when -seg_coords is false' "$O" 3 "${TS[@]}" -input "$D/onlyxy.h5" -seg_coords false
FC=(-task fcam -fcam_stage cam -output "$O/f.h5" -fcam_classifier_iterations 2)
expect_error "fcam: training scenes of one class (label 3)" 1 'oneclass\.h5: one class only; expected at least two object classes' "$O" 2 "${FC[@]}" -input "$D/sc.h5" -fcam_train "$D/oneclass.h5"
expect_error "fcam: test scenes of unseen classes on two ranks: one line" 1 'sc\.h5: scene 0 has class [0-9]+; expected one of the 2 training classes' "$O" 2 "${FC[@]}" -input "$D/sc.h5" -fcam_train "$D/twoclasses.h5"
expect_error "fcam: a test scene of a class the classifier never saw" 1 'class7\.h5: scene 3 has class 7; expected one of the 2 training classes' "$O" 3 "${FC[@]}" -input "$D/class7.h5" -fcam_train "$D/twoclasses.h5"
expect_error "fcam: training scenes with position channels only" 1 'onlyxy\.h5: only position channels; expected image features' "$O" 1 "${FC[@]}" -input "$D/onlyxy.h5" -fcam_train "$D/onlyxy.h5"
expect_error "fcam: five names for six channels" 1 'names5\.h5: 5 feature names for 6 channels; expected one name per channel' "$O" 2 "${FC[@]}" -input "$D/sc.h5" -fcam_train "$D/names5.h5"
expect_error "scenes: a NaN in the feature fields (rank 1 of 3 finds it)" 1 'featnan\.h5: /features has a non-finite value; expected finite feature fields' "$O" 3 "${TS[@]}" -input "$D/featnan.h5"

# --- HDF5 images (read by task restore)
$PY - "$D" <<'EOF' || fail "make the broken image files" "h5py failed"
import h5py, numpy as np, sys
d = sys.argv[1]
img = np.linspace(0, 1, 24 * 20).reshape(24, 20)
with h5py.File(f"{d}/noimage.h5", "w") as f: f["/picture"] = img
with h5py.File(f"{d}/int.h5", "w") as f: f["/image"] = (img * 255).astype(np.uint8)
with h5py.File(f"{d}/rgba.h5", "w") as f: f["/image"] = np.stack([img] * 4, axis=2)
bad = img.copy(); bad[13, 7] = np.inf
with h5py.File(f"{d}/inf.h5", "w") as f: f["/image"] = bad
EOF
RS=(-task restore -output "$O/r.h5" -restore_max_it 1)
expect_error "image: an HDF5 file without /image" 1 'noimage\.h5: no /image dataset; expected an HDF5 image file' "$O" 2 "${RS[@]}" -input "$D/noimage.h5"
expect_error "image: integer samples" 1 'int\.h5: /image is not an H x W or H x W x C \(C = 1 or 3\) float array' "$O" 1 "${RS[@]}" -input "$D/int.h5"
expect_error "image: four channels" 1 'rgba\.h5: /image is not an H x W or H x W x C \(C = 1 or 3\) float array' "$O" 3 "${RS[@]}" -input "$D/rgba.h5"
expect_error "image: an infinite sample" 1 'inf\.h5: sample 267 \(row 13, column 7\) is not finite; expected finite intensities' "$O" 2 "${RS[@]}" -input "$D/inf.h5"

# --- trained networks (read by task extract with -extract_network)
run_np 2 -task train -input "$D/fm.h5" -seed 3 -train_loss ce -train_train_rows 200 -train_test_rows 100 -train_epochs 1 -train_hidden 8 -train_eval_rows 20 -train_eval_steps 1 -output "$D/net.h5" || fail "a tiny network for the bad-network cases" "$(cat "$SCRATCH/err.txt")"
$PY - "$D" <<'EOF' || fail "make the broken network files" "h5py failed"
import functools, numpy as np, sys
d = sys.argv[1]
sys.path.insert(0, d)
from break_h5 import broken, replace
broken = functools.partial(broken, d, "net")
broken("netwidths", lambda f: replace(f, "/network/widths", f["/network/widths"][:].astype(np.float64)))
broken("netone", lambda f: replace(f, "/network/widths", f["/network/widths"][:1]))
broken("netparam", lambda f: replace(f, "/network/param", f["/network/param"][:-1]))
EOF
XT=(-task extract -input "$D/fm.h5" -output "$O/x.h5")
expect_error "network: float widths" 1 'netwidths\.h5: /network/widths is not a list of 2 to [0-9]+ integers; expected the output of task train' "$O" 3 "${XT[@]}" -extract_network "$D/netwidths.h5"
expect_error "network: a single width" 1 'netone\.h5: /network/widths is not a list of 2 to [0-9]+ integers' "$O" 1 "${XT[@]}" -extract_network "$D/netone.h5"
expect_error "network: one parameter short" 1 'netparam\.h5: /network/param or /network/classes has the wrong length for widths; expected [0-9]+ parameters' "$O" 2 "${XT[@]}" -extract_network "$D/netparam.h5"

# --- checkpoints (task cluster, interrupted by -debug_signal_at, then broken; the rerun refuses them)
CK=(-task cluster -input "$D/blobs.h5" -output "$O/k.h5" -cluster_k 3 -cluster_method slk-ms -cluster_max_it 10 -cluster_tol 0 -cluster_bound_tol 0)
run_np 2 "${CK[@]}" -checkpoint_file "$D/ck.h5" -debug_signal_at 2
check "a checkpoint to break exists" test -f "$D/ck.h5"
$PY - "$D" <<'EOF2' || fail "make the broken checkpoints" "h5py failed"
import functools, numpy as np, sys
d = sys.argv[1]
sys.path.insert(0, d)
from break_h5 import broken, replace
broken = functools.partial(broken, d, "ck")
broken("ckiter", lambda f: replace(f, "/scalars/iteration", np.array([3, 3], dtype=np.int64)))
broken("ckenergy", lambda f: replace(f, "/scalars/energy", f["/scalars/energy"][:2]))
broken("cknohash", lambda f: f.attrs.__delitem__("job_hash"))
broken("ckversion", lambda f: f.attrs.__setitem__("version", np.int64(999)))
EOF2
expect_error "checkpoint: an iteration that is not one integer" 1 'ckiter\.h5: /scalars/iteration is not one integer; expected a checkpoint written by this boundopt' "$O" 2 "${CK[@]}" -checkpoint_file "$D/ckiter.h5"
expect_error "checkpoint: an energy history one short" 1 'ckenergy\.h5: /scalars/energy has 2 values; expected 3' "$O" 3 "${CK[@]}" -checkpoint_file "$D/ckenergy.h5"
expect_error "checkpoint: no job hash" 1 'cknohash\.h5: not a boundopt checkpoint \(no version or job_hash\)' "$O" 1 "${CK[@]}" -checkpoint_file "$D/cknohash.h5"
expect_error "checkpoint: another version" 1 'ckversion\.h5: checkpoint of another boundopt version; expected a checkpoint written by this version' "$O" 2 "${CK[@]}" -checkpoint_file "$D/ckversion.h5"

# --- inputs whose content a task cannot use (shapes and types are fine)
$PY - "$D" <<'EOF2' || fail "make the content cases" "h5py failed"
import h5py, numpy as np, sys
d = sys.argv[1]
rng = np.random.default_rng(4)
def features(name, x, labels=None):
    with h5py.File(f"{d}/{name}.h5", "w") as f:
        f["/features"] = x.astype(np.float32)
        if labels is not None: f["/labels"] = np.asarray(labels, dtype=np.int32)
pts = rng.normal(size=(10, 3))
features("copies", np.repeat(pts, 6, axis=0), np.repeat(np.arange(10) % 2, 6))    # every point 6 times: kNN distances all 0
img = rng.uniform(0, 1, size=(40, 784))
features("nolabels784", img)
features("fewrows", img, np.r_[np.zeros(30), np.ones(4), 2 * np.ones(6)])          # class 1 has 4 rows
features("outside", img * 2, np.arange(40) % 2)                                   # pixels above 1
features("manyclasses", img, np.r_[np.arange(39) % 2, 300])                       # label 300
nan = img.copy(); nan[39, 400] = np.nan
with h5py.File(f"{d}/nanrow.h5", "w") as f:                                       # scenes reads its object rows one by one
    f["/features"] = nan.astype(np.float32); f["/labels"] = (np.arange(40) % 2).astype(np.int32)
with h5py.File(f"{d}/net.h5", "r") as f: w0 = int(f["/network/widths"][0])
with h5py.File(f"{d}/linear.h5", "w") as f:                                       # widths [784, 5]: no hidden layer
    f["/network/widths"] = np.array([w0, 5], dtype=np.int64)
    f["/network/param"] = np.zeros(w0 * 5 + 5)
    f["/network/classes"] = np.arange(5, dtype=np.int32)
EOF2
expect_error "cluster: every point repeated past knn, so every kNN distance is 0" 1 'copies\.h5: every kNN distance is 0; expected distinct neighbours \(or give -cluster_sigma\)' "$O" 2 -task cluster -input "$D/copies.h5" -output "$O/c.h5" -cluster_k 2 -cluster_method slk-ms
expect_error "extract: a network without a hidden layer" 1 'linear\.h5: a network without a hidden layer; expected at least one hidden layer' "$O" 1 -task extract -input "$D/nolabels784.h5" -output "$O/x.h5" -extract_network "$D/linear.h5"
expect_error "extract: classes asked of an input without labels" 1 'nolabels784\.h5: no /labels; expected labels to select -extract_classes' "$O" 3 -task extract -input "$D/nolabels784.h5" -output "$O/x.h5" -extract_network "$D/net.h5" -extract_classes 0-1
expect_error "fewshot: an input without labels" 1 'nolabels784\.h5: no /labels dataset; expected int32 labels for this task' "$O" 2 -task fewshot -input "$D/nolabels784.h5" -output "$O/f.h5" -fewshot_classes 0-1 -fewshot_ways 2
expect_error "fewshot: a class with fewer rows than shots + queries" 1 'fewrows\.h5: class 1 has 4 rows; expected at least shots \+ queries = 6' "$O" 3 -task fewshot -input "$D/fewrows.h5" -output "$O/f.h5" -fewshot_classes 0-2 -fewshot_ways 3 -fewshot_shots 1 -fewshot_queries 5
expect_error "train: pixels outside [0, 1]" 1 'outside\.h5: [0-9]+ feature values outside \[0, 1\]; expected pixel intensities in \[0, 1\]' "$O" 2 -task train -input "$D/outside.h5" -output "$O/t.h5" -train_train_rows 30 -train_test_rows 10
expect_error "train: a label beyond 255 classes" 1 'manyclasses\.h5: labels up to 300; expected at most 255 classes \(or -train_classes\)' "$O" 1 -task train -input "$D/manyclasses.h5" -output "$O/t.h5" -train_train_rows 30 -train_test_rows 10
expect_error "scenes: an object label beyond 254" 1 'manyclasses\.h5: label 300 at row 39; expected classes 0..254' "$O" 3 -task scenes -input "$D/manyclasses.h5" -output "$O/s.h5" -scenes_textures "$TEX/brick.png" -scenes_count 2 -scenes_size 32 -scenes_scale 1 -scenes_min_objects 1 -scenes_object_rows 39-39
expect_error "scenes: a NaN in an object image (read row by row)" 1 'nanrow\.h5: row 39 is not finite; expected finite object images' "$O" 2 -task scenes -input "$D/nanrow.h5" -output "$O/s.h5" -scenes_textures "$TEX/brick.png" -scenes_count 2 -scenes_size 32 -scenes_scale 1 -scenes_min_objects 1 -scenes_object_rows 39-39
