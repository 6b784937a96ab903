// Package all registers every arbench task family; import it for its side
// effects:
//
//	import _ "arbench/tasks/all"
package all

import (
	_ "arbench/tasks/image"     // image/{shapes,mnist}
	_ "arbench/tasks/seq2seq"   // seq2seq/{reverse,sort,copy-noisy,add,multimodal}
	_ "arbench/tasks/synthetic" // synthetic/{copy,selective-copy,assoc-recall,needle,dyck,oracle}
	_ "arbench/tasks/text"      // text/NAME and -data FILE
)
