package datasets

import (
	"bytes"
	"fmt"

	"arbench/harness"
)

// MNIST sizes: 60000 train and 10000 test images of 28×28 pixels, labels
// 0–9.
const (
	MNISTTrain   = 60000
	MNISTTest    = 10000
	MNISTSide    = 28
	MNISTClasses = 10
)

// LoadMNIST reads the built-in mnist dataset from dir (Dir() when empty):
// the train and test images (N×28×28 grey levels 0–255, Labels filled with
// the digits 0–9) as they are stored, without binarisation or scaling, and
// one harness.DatasetRef per file for the manifest (named
// mnist/train-images-idx3-ubyte.gz and so on; SHA-256 and size of the
// cached gzip'ed file, which is what reproduce re-hashes).
//
// Every file's SHA-256 is re-verified, then parsed strictly (ReadIDX) and
// checked for its shape (60000 resp. 10000 images of 28×28, as many labels
// as images, labels below 10). A missing file or a checksum mismatch is an
// error naming the file and saying how to fetch (`make datasets` or
// `arbench fetch mnist`).
func LoadMNIST(dir string) (train, test Images, refs []harness.DatasetRef, err error) {
	if dir == "" {
		dir = Dir()
	}
	c, err := lookup("mnist")
	if err != nil {
		return Images{}, Images{}, nil, err
	}
	return loadMNIST(c, dir, MNISTTrain, MNISTTest)
}

// loadMNIST reads c's four members (train images, train labels, test
// images, test labels, in that order) from dir and checks for nTrain and
// nTest images of MNISTSide×MNISTSide.
func loadMNIST(c corpus, dir string, nTrain, nTest int) (train, test Images, refs []harness.DatasetRef, err error) {
	if len(c.members) != 4 {
		return Images{}, Images{}, nil, fmt.Errorf("datasets: %s: want 4 files (images and labels of train and test), have %d", c.name, len(c.members))
	}
	data, refs, err := c.read(dir)
	if err != nil {
		return Images{}, Images{}, nil, err
	}
	set := func(i, n int) (Images, error) {
		imgPath, lblPath := refs[i].Path, refs[i+1].Path
		im, err := ReadImages(bytes.NewReader(data[i]), imgPath)
		if err != nil {
			return Images{}, fmt.Errorf("datasets: %s: %w", c.name, err)
		}
		if im.N != n || im.H != MNISTSide || im.W != MNISTSide {
			return Images{}, fmt.Errorf("datasets: %s: %s: %d images of %d×%d, want %d of %d×%d",
				c.name, imgPath, im.N, im.H, im.W, n, MNISTSide, MNISTSide)
		}
		labels, err := ReadLabels(bytes.NewReader(data[i+1]), lblPath)
		if err != nil {
			return Images{}, fmt.Errorf("datasets: %s: %w", c.name, err)
		}
		if len(labels) != im.N {
			return Images{}, fmt.Errorf("datasets: %s: %s: %d labels for the %d images of %s",
				c.name, lblPath, len(labels), im.N, imgPath)
		}
		for j, l := range labels {
			if l >= MNISTClasses {
				return Images{}, fmt.Errorf("datasets: %s: %s: label %d is %d, want 0–%d", c.name, lblPath, j, l, MNISTClasses-1)
			}
		}
		im.Labels = labels
		return im, nil
	}
	if train, err = set(0, nTrain); err != nil {
		return Images{}, Images{}, nil, err
	}
	if test, err = set(2, nTest); err != nil {
		return Images{}, Images{}, nil, err
	}
	return train, test, refs, nil
}
