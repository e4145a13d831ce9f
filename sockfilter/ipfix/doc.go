// Package ipfix exports flow records as IPFIX (RFC 7011), the flow export
// protocol that nfdump's nfcapd, GoFlow2, libfixbuf's tools, ElastiFlow
// and most flow collectors take, to an io.Writer: a UDP socket, a TCP
// connection or a file (RFC 5655: a file is a stream of messages, as
// libfixbuf writes and reads it).
//
// The records are flow.Flow values, as a flow.Meter makes them from the
// kernel's flow table, sent with three templates of IANA information
// elements (see Templates): addresses, ports, protocol, octet and packet
// delta counts, start and end in milliseconds, TCP flags, interface,
// direction, VLAN and end reason. A Decoder reads them back, and the
// messages of other exporters.
//
// It needs only the standard library and builds on every GOOS.
//
// # A worked example
//
// Send the records a Meter expires to a collector over UDP:
//
//	conn, err := net.Dial("udp", "collector.example:4739")
//	if err != nil {
//		return err
//	}
//	defer conn.Close()
//	exp, err := ipfix.NewExporter(conn, &ipfix.Config{ObservationDomain: 1})
//	if err != nil {
//		return err
//	}
//	for range ticker.C {
//		// ... m.Observe each table entry ...
//		flows = m.Expire(time.Now(), del, flows[:0])
//		for i := range flows {
//			if err := exp.Add(&flows[i]); err != nil {
//				log.Print(err) // a UDP write error loses one message, not the export
//			}
//		}
//		if err := exp.Flush(); err != nil {
//			log.Print(err)
//		}
//	}
//
// Writing to a file instead (os.Create, then NewExporter on a
// bufio.Writer, flushed at the end) makes a file libfixbuf's
// `ipfixDump -i FILE` reads: the templates once, in the first message,
// then messages of up to 65535 octets.
package ipfix
