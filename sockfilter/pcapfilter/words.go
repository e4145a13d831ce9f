package pcapfilter

import "strings"

// unsupportedWords are libpcap 1.10's keywords (scanner.l) that this
// compiler does not compile: wherever one stands, Compile says so ("X" is
// not supported by this compiler) rather than that it is unknown or that
// the expression should have ended before it. They are keywords, never
// names or values.
var unsupportedWords = map[string]bool{}

func init() {
	for w := range strings.FieldsSeq(`igrp radio gateway type subtype direction dir address1 addr1 address2 addr2 address3 addr3
		address4 addr4 ra ta byte lane metac bcc oam oamf4 oamf4ec oamf4sc sc ilmic vpi vci
		connectmsg metaconnect on ifname rset ruleset rnr rulenum srnr subrulenum reason action
		fisu lssu lsu msu hfisu hlssu hmsu sio opc dpc sls hsio hopc hdpc hsls`) {
		unsupportedWords[w] = true
		keywords[w] = true
	}
	keywords["length"] = true
}

// unsupported returns the error of an unsupported keyword at t, or nil if
// t is not one.
func (p *parser) unsupported(t token) *Error {
	if t.kind == tokWord && unsupportedWords[t.text] {
		return p.fail(t, "%s is not supported by this compiler", quote(t.text))
	}
	return nil
}
